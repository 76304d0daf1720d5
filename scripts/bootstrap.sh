#!/usr/bin/env bash
# Installs pglane's build and test dependencies from Debian 12 packages, and the npm packages
# of the node-postgres driver test (tests/integration/drivers/package-lock.json). Idempotent.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pkgs=(
  build-essential cmake ninja-build pkg-config git clang-format
  libboost1.81-dev libssl-dev libabsl-dev libpq-dev libhiredis-dev libtomlplusplus-dev
  libsystemd-dev libgtest-dev libgmock-dev libbenchmark-dev libpg-query-dev libprotobuf-c-dev
  libidn-dev clang-14 libfuzzer-14-dev
  postgresql-15 postgresql-client-15 redis-server pgbouncer openssl procps python3-psycopg
  python3-asyncpg systemd default-jdk-headless libpostgresql-jdbc-java
  prometheus gnuplot-nox
)
# Node.js for the node-postgres test: Debian's nodejs and npm, unless a node with its own npm
# (such as NodeSource's package) is already there.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian starts the packaged servers; pglane's scripts run their own on free ports.
  for svc in postgresql redis-server pgbouncer prometheus prometheus-node-exporter; do
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  done
fi

# node_modules exactly as locked; reinstalled only when the lock file changed.
drivers="$root/tests/integration/drivers"
stamp="$drivers/node_modules/.pglane-lock-sha256"
want=$(sha256sum "$drivers/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --prefix "$drivers" --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
