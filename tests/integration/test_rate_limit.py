"""Rate limits between real processes (issue 9: "rate limits that hold").

A limit is a token bucket per peer device (src/sync/rate_limiter.h): after
idling, at most its burst, max(64 KiB, a quarter second of rate), goes at
once; the rest of a transfer goes at the rate. The limit used to be a
lifetime average per session: a daemon limited to 10 KB/s, idle for a
minute, then pulled 210 KB in 0.2 s.

Files get random names, so that a row takes ~18 bytes on the wire (names
like f00001.txt compress to about one byte a row): 8000 files are ~140 KB.
The bounds are lower bounds with slack (a loaded machine only makes a
transfer slower), and the limit must be what makes them hold: unlimited,
the same pull takes a fraction of a second.
"""

import json
import os
import re
import time

import es

RATE = 20_000  # bytes per second
BURST = 64 << 10  # TokenBucket::DefaultBurst(RATE)
FILES = 8000


def random_tree(root, n):
    """n empty files with random names in one folder (root/d0000): with the
    root, n + 2 rows."""
    es.make_tree(root, n, per_dir=n, random_names=True)


def pulled_seconds(log):
    """(rows, seconds) of every pull a daemon's log reports."""
    return [(int(n), float(s)) for n, s in re.findall(r"pulled (\d+) rows of alpha from alpha in ([0-9.]+)s", log)]


class PullAfterIdle(es.EsTestCase):
    """B's daemon (--rate-limit) pulls a few rows from A, idles longer than
    the whole next pull would take at the rate, then pulls ~140 KB: only the
    burst goes at once, the rest at the rate (an average over the session
    let all of it through at once)."""

    def test_pull_after_idle_is_paced(self):
        a, b = self.library("alpha", "beta")
        es.pair(a, b, addr_b=False)  # B dials A
        random_tree(os.path.join(a.data, "small"), 10)
        a.add_location(os.path.join(a.data, "small"))
        a.serve()
        b.serve("--rate-limit", str(RATE / 1e6))
        es.wait_watermark(b, "alpha", a.max_seq(), timeout=20 * es.SLOW, daemons=[a, b])

        big = os.path.join(a.data, "big")
        random_tree(big, FILES)
        idle = 8.0  # at RATE, banks more than the whole pull
        time.sleep(idle)
        t0 = time.monotonic()
        a.add_location(big)
        es.wait_watermark(b, "alpha", a.max_seq(), timeout=60 * es.SLOW, daemons=[a, b])
        secs = time.monotonic() - t0
        self.assertEqual(b.digest("alpha"), a.digest())

        pulls = pulled_seconds(b.log())
        rows, pull_secs = pulls[-1]
        self.assertEqual(rows, FILES + 2, b.log_tail())  # the files, their folder and the root
        done = es.wait_until(lambda: [t for t in (b.status()["daemon"] or {"sessions": []})["sessions"][-1]
                                      ["transfers"] if t["direction"] == "pull" and t["done"] == FILES + 2],
                             10 * es.SLOW, "B's status to show the pull")
        nbytes = done[-1]["bytes"]
        self.assertGreater(nbytes, idle * RATE * 0.8, "the pull must be larger than what the idle time banked")
        self.assertLess(nbytes, idle * RATE, "an average over the session would let it all through at once")
        # Beyond the burst, every batch but the last (of 1 row here) is paid
        # for at the rate; the bound leaves out one batch of 1000 rows more.
        paced = (nbytes - BURST - nbytes / 8) / RATE
        self.assertGreater(paced, 1.5)
        es.report("pull after %.0fs idle: %d bytes in %.2fs (B's log: %.2fs), at least %.2fs at %d B/s"
                  % (idle, nbytes, secs, pull_secs, paced, RATE))
        self.assertGreaterEqual(pull_secs, paced * 0.9)
        self.assertLess(pull_secs, 30 * es.SLOW)
        a.assert_alive()
        b.assert_alive()


class UploadLimit(es.EsTestCase):
    """A's daemon (--upload-rate-limit) serves a one-shot `sync` of B at its
    upload rate."""

    def test_upload_is_paced(self):
        a, b = self.library("alpha", "beta")
        es.pair(a, b, addr_b=False)
        random_tree(a.data, FILES)
        a.add_location()
        a.serve("--upload-rate-limit", str(RATE / 1e6))
        t0 = time.monotonic()
        p = b.cli("sync", "--peer", "alpha", "--json", "--timeout", str(int(60 * es.SLOW)), timeout=90 * es.SLOW)
        secs = time.monotonic() - t0
        summary = json.loads(p.stdout.splitlines()[-1])
        self.assertEqual(b.digest("alpha"), a.digest())
        pulls = [t for t in summary["transfers"] if t["direction"] == "pull" and t["owner"] == "alpha"]
        self.assertEqual(len(pulls), 1, summary)
        nbytes, pull_secs = pulls[0]["bytes"], pulls[0]["seconds"]
        paced = (nbytes - BURST - nbytes / 8) / RATE
        self.assertGreater(paced, 1.5)
        es.report("upload limit: %d bytes served in %.2fs (sync took %.2fs), at least %.2fs at %d B/s"
                  % (nbytes, pull_secs, secs, paced, RATE))
        self.assertGreaterEqual(pull_secs, paced * 0.9)
        self.assertRegex(a.log(), r"served %d rows of alpha to beta" % (FILES + 2))
        a.assert_alive()


if __name__ == "__main__":
    es.main()
