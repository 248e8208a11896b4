#!/usr/bin/env bash
# The main job, end to end: installs what is missing, builds, then runs two
# devices on loopback. "alpha" indexes a real folder (default /usr) and
# serves it over TLS; "beta" syncs it with a progress bar; both digests of
# alpha's entries are printed and compared.
# Usage: scripts/demo.sh [FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:-/usr}
scripts/install-deps.sh
scripts/build.sh >/dev/null
ES=$PWD/build/entrysync
WORK=$(mktemp -d /tmp/entrysync-demo.XXXXXX)
PORT=$(( 20000 + RANDOM % 20000 ))
cleanup() { [ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

json_field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }

echo "== two devices of one library"
$ES init --library "$WORK/alpha" --name alpha
LIBRARY_ID=$($ES id --library "$WORK/alpha" --json | json_field library_id)
$ES init --library "$WORK/beta" --name beta --join "$LIBRARY_ID"
ALPHA_ID=$($ES id --library "$WORK/alpha" --json | json_field device_id)
BETA_ID=$($ES id --library "$WORK/beta" --json | json_field device_id)
$ES peer add --library "$WORK/alpha" --name beta --id "$BETA_ID"
$ES peer add --library "$WORK/beta" --name alpha --id "$ALPHA_ID" --addr "127.0.0.1:$PORT"

echo "== alpha indexes $FOLDER"
$ES location add --library "$WORK/alpha" "$FOLDER"

echo "== alpha serves on 127.0.0.1:$PORT (TLS 1.3, paired devices only)"
$ES serve --library "$WORK/alpha" --listen "127.0.0.1:$PORT" 2>"$WORK/alpha.log" &
SERVE_PID=$!
for _ in $(seq 50); do grep -q listening "$WORK/alpha.log" && break; sleep 0.1; done

echo "== beta syncs from alpha"
$ES sync --library "$WORK/beta" --peer alpha

echo "== digests of alpha's entries"
A=$($ES digest --library "$WORK/alpha" --device alpha)
B=$($ES digest --library "$WORK/beta" --device alpha)
echo "alpha: $A"
echo "beta:  $B"
if [ "${A%% *}" = "${B%% *}" ]; then echo "OK: both devices hold the same entries"; else echo "MISMATCH"; exit 1; fi
