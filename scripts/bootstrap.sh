#!/usr/bin/env bash
# Installs pglane's build and test dependencies from Debian 12 packages. Idempotent.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git clang-format
  libboost1.81-dev libssl-dev libabsl-dev libpq-dev libhiredis-dev libtomlplusplus-dev
  libsystemd-dev libgtest-dev libgmock-dev libbenchmark-dev libpg-query-dev libprotobuf-c-dev
  libidn-dev clang-14 libfuzzer-14-dev
  postgresql-15 postgresql-client-15 redis-server pgbouncer openssl procps python3-psycopg
  systemd default-jdk-headless libpostgresql-jdbc-java
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts the packaged servers; pglane's scripts run their own on free ports.
for svc in postgresql redis-server pgbouncer; do
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
