"""A daemon under hostile load (issue 9): more silent connections than it has
descriptors for, and a paired device that floods Pings and never reads. Its
paired peer still syncs, its log stays small, and the flooder is cut off
with the reason in the log. bench/hostile_load.py measures the same at full
size."""

import os

import es
import hostile


class HostileNet(es.EsTestCase):
    def test_idle_connections_and_ping_flood(self):
        alpha, beta, mallory = self.library("alpha", "beta", "mallory")
        es.pair(alpha, beta)
        beta.add_peer(mallory, with_addr=False)
        mallory.add_peer(beta)
        before = os.path.join(alpha.data, "before")
        during = os.path.join(alpha.data, "during")
        es.make_tree(before, 100)
        es.make_tree(during, es.scaled(2000, minimum=200))
        beta.serve(nofile=256)
        alpha.serve()
        daemons = (alpha, beta)
        alpha.add_location(before)
        es.wait_watermark(beta, "alpha", alpha.max_seq(), 30 * es.SLOW, daemons)
        log_before = len(beta.log())

        hostile.raise_nofile(2000)
        idle = hostile.IdleConnections("127.0.0.1", beta.port, 300, reconnect_delay=0.5)
        flood = hostile.PingFlood("127.0.0.1", beta.port, os.path.join(mallory.lib, "identity"), mallory.id(),
                                  reconnect_delay=0.5)
        idle.start()
        flood.start()
        try:
            es.wait_until(lambda: "not reading its replies" in beta.log(), 20 * es.SLOW,
                          "beta to cut the ping flooder off",
                          on_timeout=lambda: "\nflood: %d sessions, %s, refused %s%s"
                          % (flood.connections, flood.disconnects[-1:], flood.refusals[-1:], es.logs(beta)))
            # Still serving its paired peer.
            alpha.add_location(during)
            es.wait_watermark(beta, "alpha", alpha.max_seq(), 30 * es.SLOW, daemons)
            beta.assert_alive()
        finally:
            flood.stop()
            idle.stop()
        self.assertGreater(idle.closed_by_peer, 0, "beta closed none of the idle connections")
        self.assertGreaterEqual(len(flood.disconnects), 1)
        log = beta.log()
        grown = len(log) - log_before
        es.report("idle: %d opened, %d closed by beta; flood: %d sessions, %d cut off; log +%d bytes"
                  % (idle.opened, idle.closed_by_peer, flood.connections, len(flood.disconnects), grown))
        line = next(l for l in log.splitlines() if "not reading its replies" in l)
        self.assertRegex(line, r"session with mallory: not reading its replies, \d+ bytes queued; disconnected")
        # Refusals: a few per 10 s in full, the rest in one summary line; a
        # flood session costs three lines (accepted, connected, cut off).
        self.assertLessEqual(log.count("refused a connection: peer "), 5 * 4, es.logs(beta))
        self.assertLess(grown, 64 * 1024, es.logs(beta))


if __name__ == "__main__":
    es.main()
