#!/usr/bin/env python3
"""What verifying relayed rows costs: 1M entries relayed through a third device.

    bench/relay_verify.py --bin build/entrysync --baseline OLD/entrysync
                          [--entries 1000000] [--reps 2] [--json FILE] [--keep]

Real processes on 127.0.0.1 (issue 9, targets). Three devices of one
library, pairs alpha-beta and beta-gamma only. Alpha indexes a folder of
--entries files (`location add`, before any daemon runs); alpha and beta
serve until beta holds alpha's rows (A->B); alpha stops; gamma serves and
pulls alpha's rows from beta, which it never met (B->C, the relay). Times
run from the daemon's start until the receiver's `watermark` row (read with
sqlite3, read-only, every 20 ms) reaches alpha's max seq; at the end
gamma's digest of alpha must equal alpha's own.

--bin verifies relayed rows (a set digest kept per owner, checkpoints
checked, docs/trust.md); --baseline is the same program built before that
(any entrysync whose CLI has the same commands, e.g. a build of the commit
before the Trust issue). The two alternate (bin, baseline, baseline, bin,
...) on one file tree, so the machine's noise hits both. Figures: the
median B->C and A->B seconds of each binary and their ratio bin/baseline
(target for B->C: <= 1.15), and gamma's CPU seconds during the relay.
Python 3 stdlib; device helpers from tests/integration/es.py.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import es  # noqa: E402

TARGET = 1.15


def wait_seq(dev, owner_uuid, seq, daemons, t0, timeout=600):
    reader = es.WatermarkReader(dev.lib, owner_uuid)
    try:
        while reader.seq() < seq:
            for d in daemons:
                d.assert_alive()
            if time.monotonic() - t0 > timeout:
                raise SystemExit("%s did not reach seq %d of alpha in %ds%s"
                                 % (dev.name, seq, timeout, es.logs(*daemons)))
            time.sleep(0.02)
        return time.monotonic() - t0
    finally:
        reader.close()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(binary, base, tree):
    es.use_binary(binary)
    os.makedirs(base)
    a = es.Device(base, "alpha")
    b = es.Device(base, "beta", library_id=a.library_id)
    c = es.Device(base, "gamma", library_id=a.library_id)
    es.pair(a, b)
    es.pair(b, c)
    a.add_location(tree)
    top = a.max_seq()
    try:
        t0 = time.monotonic()
        b.serve()
        a.serve()
        t_ab = wait_seq(b, a.uuid, top, [a, b], t0)
        if a.stop() != 0:
            raise SystemExit("alpha's daemon failed%s" % es.logs(a))
        t0 = time.monotonic()
        c.serve()
        t_bc = wait_seq(c, a.uuid, top, [b, c], t0)
        cpu_c = cpu_seconds(c.proc.pid)
        for d in (b, c):
            if d.stop() != 0:
                raise SystemExit("%s's daemon failed%s" % (d.name, es.logs(d)))
        got, want = c.digest("alpha"), a.digest()
        if got != want:
            raise SystemExit("gamma's digest of alpha %s differs from alpha's %s" % (got, want))
        return {"a_to_b_s": t_ab, "b_to_c_s": t_bc, "gamma_cpu_s": cpu_c, "entries": want[1]}
    finally:
        for d in (a, b, c):
            if d.running():
                d.proc.kill()
                d.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    binaries = {"bin": os.path.abspath(args.bin), "baseline": os.path.abspath(args.baseline)}
    work = tempfile.mkdtemp(prefix="es-relay-", dir=es.temp_base())
    try:
        tree = os.path.join(work, "tree")
        os.makedirs(tree)
        es.make_tree(tree, args.entries, per_dir=1000)
        runs = {"bin": [], "baseline": []}
        order = []
        for r in range(args.reps):
            order += ["bin", "baseline"] if r % 2 == 0 else ["baseline", "bin"]
        for i, which in enumerate(order):
            res = one_run(binaries[which], os.path.join(work, "run%d" % i), tree)
            if not args.keep:
                shutil.rmtree(os.path.join(work, "run%d" % i), ignore_errors=True)
            runs[which].append(res)
            print("%-8s A->B %6.2fs  B->C %6.2fs  gamma cpu %5.2fs  (%d entries)"
                  % (which, res["a_to_b_s"], res["b_to_c_s"], res["gamma_cpu_s"], res["entries"]), flush=True)
        med = {w: {k: statistics.median(r[k] for r in runs[w]) for k in ("a_to_b_s", "b_to_c_s", "gamma_cpu_s")}
               for w in runs}
        ratio = med["bin"]["b_to_c_s"] / med["baseline"]["b_to_c_s"]
        ratio_ab = med["bin"]["a_to_b_s"] / med["baseline"]["a_to_b_s"]
        print("median B->C: bin %.2fs, baseline %.2fs: %.2fx (target <= %.2fx); A->B %.2fx"
              % (med["bin"]["b_to_c_s"], med["baseline"]["b_to_c_s"], ratio, TARGET, ratio_ab))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"entries": args.entries, "runs": runs, "median": med, "relay_ratio": ratio,
                           "direct_ratio": ratio_ab, "bin": binaries["bin"], "baseline": binaries["baseline"]},
                          f, indent=2)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)


if __name__ == "__main__":
    main()
