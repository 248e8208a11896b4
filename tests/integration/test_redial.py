"""Reconnect back-off between real daemons (issue 9): a connection that
comes up and fails at once used to reset the back-off, so a daemon redialed
a peer that refused it twice a second forever. Now such failures back off
like failed dials: 2 s, doubling up to a minute, each delay jittered by
+-20% (src/node/dial_backoff.h), and each attempt logs one line with the
next delay."""

import re
import time

import es


class RefusedSessionsBackOff(es.EsTestCase):
    """B dials A, which pairs B's device but belongs to another library: TLS
    comes up, then A refuses B's Hello. B backs off 2, 4, 8 s..."""

    def test_refused_sessions_back_off(self):
        a = self.device("alpha")
        b = self.device("beta")  # another library
        es.pair(a, b, addr_b=False)  # B dials A; A does not dial B
        a.serve()
        b.serve()
        watch = 10.0
        time.sleep(watch)
        a.assert_alive()
        b.assert_alive()
        log = b.log()
        delays = [float(s) for s in re.findall(
            r"session with alpha at \S+ ended after [0-9.]+s without syncing: .* \(attempt \d+, next try in ([0-9.]+)s\)",
            log)]
        accepted = len(re.findall(r"accepted ", a.log()))
        es.report("redial: %d attempts in %.0fs, delays %s; A accepted %d connections"
                  % (len(delays), watch, delays, accepted))
        self.assertIn("belongs to library", log, b.log_tail())
        # Attempts at about 0, 2 and 6 s (then 14 s): 3, or 4 on a slow start.
        self.assertGreaterEqual(len(delays), 2, b.log_tail())
        self.assertLessEqual(len(delays), 4, b.log_tail())
        self.assertLessEqual(accepted, 5)
        # Doubling, +-20%: each range is above the last.
        for i, d in enumerate(delays):
            self.assertGreaterEqual(d, 2 * 2 ** i * 0.8 - 0.05, delays)
            self.assertLessEqual(d, 2 * 2 ** i * 1.2 + 0.05, delays)


if __name__ == "__main__":
    es.main()
