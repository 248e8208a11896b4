#!/usr/bin/env bash
# Installs the Debian 12 packages entrysync builds with. Idempotent; needs root.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libsqlite3-dev sqlite3 libzstd-dev zlib1g-dev libssl-dev libasio-dev
      libprotobuf-dev protobuf-compiler libcli11-dev nlohmann-json3-dev
      libgtest-dev libgmock-dev libbenchmark-dev libspdlog-dev gnuplot-nox python3
      clang-format clang-tidy)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
