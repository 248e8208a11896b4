#!/usr/bin/env bash
# The seed's strategy table, measured: builds entrysync and strategies_bench
# (Release) and runs strategies_bench (every strategy between two real
# entrysync processes over TLS on loopback, with a bare-SQLite floor and the
# one-change latency), writing the Markdown table to stdout and
# bench/results/strategies.{json,png}.
# Usage: bench/strategies.sh [--entries 10000,100000,1000000] [other strategies_bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-bench entrysync strategies_bench >/dev/null
mkdir -p bench/results
exec build-bench/bench/strategies_bench --entrysync build-bench/entrysync \
  --json bench/results/strategies.json --plot bench/results/strategies.png "$@"
