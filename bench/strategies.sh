#!/usr/bin/env bash
# The seed's strategy table, measured: builds entrysync (Release) and runs
# `entrysync bench` (every strategy between two real processes over TLS on
# loopback, with a bare-SQLite floor and the one-change latency), writing
# the Markdown table to stdout and bench/results/strategies.{json,png}.
# Usage: bench/strategies.sh [--entries 10000,100000,1000000] [other `entrysync bench` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-bench entrysync >/dev/null
mkdir -p bench/results
exec build-bench/entrysync bench --json bench/results/strategies.json --plot bench/results/strategies.png "$@"
