#!/usr/bin/env bash
# Builds the libFuzzer harnesses in build-fuzz (clang, ASan+UBSan) and runs
# each, one after the other, for SECONDS (default 20). Seeds are written by
# fuzz_seeds into build-fuzz/seeds/<fuzzer>/ and read with the inputs checked
# in under fuzz/corpus/<fuzzer>/ (when there); each fuzzer uses its
# dictionary fuzz/<fuzzer>.dict; the growing corpus lives in
# build-fuzz/corpus/<fuzzer>/. Prints executions and coverage per fuzzer.
# Exits non-zero if a fuzzer finds a crash (artifacts in build-fuzz/artifacts/).
#
#   fuzz/run.sh 60                          every fuzzer, 60 s each
#   fuzz/run.sh 600 session_fuzzer          one of them
#   FUZZ_ARGS="-runs=10000000" fuzz/run.sh 0 frame_fuzzer   by executions (0 = no time limit)
#
# Longer runs, rates and coverage reached: fuzz/README.md.
set -euo pipefail
SECONDS_EACH="${1:-20}"
shift || true
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build-fuzz}"
ALL=(frame_fuzzer message_fuzzer batch_fuzzer snapshot_fuzzer session_fuzzer)
FUZZERS=("${@:-${ALL[@]}}")

if [[ ! -f "$BUILD/build.ninja" ]]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DENTRYSYNC_FUZZ=ON -DENTRYSYNC_BENCH=OFF "${launcher[@]}"
fi
ninja -C "$BUILD" "${FUZZERS[@]}" fuzz_seeds

# Largest input per fuzzer: a batch fits 64 KiB; frame streams, snapshot
# files (512-byte pages) and session exchanges stay small.
max_len() {
  case "$1" in
    batch_fuzzer) echo 65536 ;;
    *) echo 16384 ;;
  esac
}

mkdir -p "$BUILD/artifacts"
failed=()
summary=()
for f in "${FUZZERS[@]}"; do
  seeds="$BUILD/seeds/$f"
  work="$BUILD/corpus/$f"
  mkdir -p "$work" "$seeds"
  "$BUILD/fuzz/fuzz_seeds" "$f" "$seeds"
  dirs=("$work" "$seeds")
  [[ -d "$ROOT/fuzz/corpus/$f" ]] && dirs+=("$ROOT/fuzz/corpus/$f")
  dict=()
  [[ -f "$ROOT/fuzz/$f.dict" ]] && dict=(-dict="$ROOT/fuzz/$f.dict")
  echo "== $f for ${SECONDS_EACH}s"
  log="$BUILD/artifacts/$f.log"
  set +e
  # shellcheck disable=SC2086
  "$BUILD/fuzz/$f" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$f")" -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$f-" "${dict[@]}" \
    ${FUZZ_ARGS:-} "${dirs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  grep -E "INITED|DONE|ERROR|SUMMARY|fuzz check|_fuzzer:|Test unit written" "$log" || true
  [[ "$rc" -ne 0 ]] && failed+=("$f")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -oE "(DONE|INITED) +cov: [0-9]+ ft: [0-9]+" "$log" | tail -1 | sed -E 's/(DONE|INITED) +//')
  summary+=("$(printf '%-16s %10s runs %7s/s  %s  rc=%s' "$f" "${runs:-?}" "${rate:-?}" "${cov:-?}" "$rc")")
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzers that failed: ${failed[*]} (inputs in $BUILD/artifacts/)" >&2
  exit 1
fi
