"""CLI errors: non-zero exit, nothing on stdout, exactly one stderr line
starting 'entrysync: error:'."""

import os

import es


class CliErrors(es.EsTestCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = self.library("alpha", "beta")
        es.pair(self.a, self.b)  # B's daemon is not running
        es.make_tree(self.a.data, 10, per_dir=10)
        self.a.add_location()

    def check_error(self, args, contains=None, lib=True):
        full = (["--library", self.a.lib] if lib else []) + list(args)
        p = es.run(full, check=False, timeout=60 * es.SLOW)
        with self.subTest(args=" ".join(args)):
            self.assertGreater(p.returncode, 0, "rc %d for %s (stderr %r)" % (p.returncode, args, p.stderr))
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 1, "stderr of %s: %r" % (args, p.stderr))
            self.assertTrue(lines[0].startswith("entrysync: error: "), lines[0])
            self.assertEqual(p.stdout, "", "stdout of %s" % (args,))
            if contains:
                self.assertIn(contains.lower(), lines[0].lower())
        return p

    def test_errors(self):
        missing = os.path.join(self.tmp, "no-such-folder")
        before = self.a.digest()
        # missing folder
        self.check_error(["location", "add", missing], "no such file")
        self.check_error(["rescan", missing])
        self.check_error(["ls", missing])
        # missing library
        self.check_error(["--library", missing, "stats"], "no library", lib=False)
        self.check_error(["stats"], "no library", lib=False)  # neither --library nor ENTRYSYNC_LIBRARY
        self.check_error(["--library", missing, "serve", "--listen", "127.0.0.1:0"], "no library", lib=False)
        # bad flags
        self.check_error(["stats", "--bogus"], "--bogus")
        self.check_error(["--bogus", "stats"], "--bogus")
        self.check_error(["sync"], "--peer")
        self.check_error(["export", "--format", "xml"], "xml")
        self.check_error(["sync", "--peer", "beta", "--strategy", "warp"], "warp")
        self.check_error(["peer", "add", "--name", "x", "--id", "a" * 64, "--addr", "nocolon"], "nocolon")
        self.check_error([])
        # unknown peer / device
        self.check_error(["sync", "--peer", "nobody"], "nobody")
        self.check_error(["peer", "remove", "nobody"], "nobody")
        self.check_error(["ls", "--device", "nobody"], "nobody")
        self.check_error(["digest", "--device", "nobody"], "nobody")
        self.check_error(["export", "--device", "nobody"], "nobody")
        # bad device id / library id
        self.check_error(["peer", "add", "--name", "x", "--id", "zzz"], "zzz")
        self.check_error(["peer", "add", "--name", "x", "--id", "a" * 63], "device id")
        self.check_error(["peer", "add", "--name", "self", "--id", self.a.device_id], "itself")
        self.check_error(["init", "--library", os.path.join(self.tmp, "z"), "--name", "z", "--join", "notauuid"],
                         "library id", lib=False)
        self.check_error(["init", "--name", "again"], "already exists")
        # a paired peer whose daemon is not running
        self.check_error(["sync", "--peer", "beta", "--timeout", "5"], "beta")
        # a port in use
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            self.check_error(["serve", "--listen", "127.0.0.1:%d" % s.getsockname()[1]])
        # a second daemon on a library that one already serves: refused,
        # naming the holder; the first one keeps running
        proc = self.a.serve()
        p = self.check_error(["serve", "--listen", "127.0.0.1:0"], "in use by pid %d (entrysync serve)" % proc.pid)
        self.a.assert_alive()
        self.assertIn("daemon", self.a.cli("status").stdout)
        self.a.stop()
        # Nothing above changed the library.
        self.assertEqual(self.a.digest(), before)
        self.assertNotIn("\tx\t", self.a.cli("peer", "list").stdout)


class ExportFormatFlag(es.EsTestCase):
    # Regression test (found by it, fixed in a1ce879): `entrysync export --format
    # tsv` died with SIGSEGV while plain `entrysync export` worked: the `format`
    # option's storage was not kept alive by the command's lambda.
    def test_export_format_tsv(self):
        (a,) = self.library("alpha")
        es.make_tree(a.data, 5, per_dir=5)
        a.add_location()
        plain = a.cli("export").stdout
        p = a.cli("export", "--format", "tsv", check=False)
        self.assertEqual(p.returncode, 0, "export --format tsv: rc %d, stderr %r" % (p.returncode, p.stderr))
        self.assertEqual(p.stdout, plain)
        p = a.cli("export", "--device", "alpha", "--format", "tsv", check=False)
        self.assertEqual(p.returncode, 0, "export --device alpha --format tsv: rc %d" % p.returncode)
        self.assertEqual(p.stdout, plain)


if __name__ == "__main__":
    es.main()
