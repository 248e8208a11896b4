#!/usr/bin/env bash
# Builds the libFuzzer harnesses in build-fuzz (clang, ASan+UBSan) and runs
# each for SECONDS (default 20). Seeds are written by fuzz_seeds into
# build-fuzz/seeds/<fuzzer>/; the growing corpus lives in build-fuzz/corpus/.
# Exits non-zero if a fuzzer finds a crash (artifacts in build-fuzz/artifacts/).
#
#   fuzz/run.sh 60
set -euo pipefail
SECONDS_EACH="${1:-20}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build-fuzz}"

if [[ ! -f "$BUILD/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DENTRYSYNC_FUZZ=ON -DENTRYSYNC_BENCH=OFF
fi
ninja -C "$BUILD" frame_fuzzer batch_fuzzer fuzz_seeds

mkdir -p "$BUILD/artifacts"
for f in frame_fuzzer batch_fuzzer; do
  seeds="$BUILD/seeds/$f"
  work="$BUILD/corpus/$f"
  mkdir -p "$work" "$seeds"
  "$BUILD/fuzz/fuzz_seeds" "$f" "$seeds"
  echo "== $f for ${SECONDS_EACH}s"
  "$BUILD/fuzz/$f" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$f-" "$work" "$seeds"
done
